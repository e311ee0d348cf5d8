"""How the client talks to a broker.

- grpc.py: the gRPC implementation.
- channel.py: gRPC channels, retries and deadlines.
"""
