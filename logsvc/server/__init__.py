"""The broker's gRPC face: the servicer (:mod:`.service`), status translation (:mod:`.status`),
metrics (:mod:`.metrics`), malformed requests (:mod:`.malformed`) and the process around them
(:mod:`.app`)."""
