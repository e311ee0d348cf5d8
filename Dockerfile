# The logsvc image: the broker (`logsvc serve`), the sink connectors (`logsvc connect ...`) and the
# web console (`logsvc console`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proto proto
COPY logsvc logsvc
COPY clients clients
COPY connectors connectors
RUN pip install --no-cache-dir '.[connectors,kafka,console]'
EXPOSE 50051 9095 8080
VOLUME /data
# gRPC health check of the broker (the connectors override it in docker-compose.yml).
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD python -c "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
sys.exit(g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')).Check(h.HealthCheckRequest(), timeout=2).status != 1)"
ENTRYPOINT ["logsvc"]
CMD ["serve", "--data-dir", "/data", "--listen", "0.0.0.0:50051", "--metrics-port", "9095", "--metrics-host", "0.0.0.0"]
