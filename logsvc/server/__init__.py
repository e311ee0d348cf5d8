"""The broker's gRPC face: the one door every call passes (:mod:`.calls`: authentication,
ACLs, quotas, audit, errors to statuses), the servicer (:mod:`.service`, with :mod:`.group_rpcs`
and :mod:`.access_rpcs`), long polls that hold no thread (:mod:`.long_polls`), who a call is
(:mod:`.principals`), what each RPC needs (:mod:`.authorization`), throttling (:mod:`.quotas`),
the audit log (:mod:`.audit`), metrics (:mod:`.metrics`, served by
:mod:`logsvc_wire.metrics_http`), malformed requests (:mod:`.malformed`) and the process around
them (:mod:`.app`)."""
