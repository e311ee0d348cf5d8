"""The broker's gRPC face: the servicer (:mod:`.service`), status translation (:mod:`.status`),
who a call is (:mod:`.principals`), throttling (:mod:`.quotas`), metrics (:mod:`.metrics`, served
by :mod:`.metrics_http`), malformed requests (:mod:`.malformed`) and the process around them
(:mod:`.app`)."""
