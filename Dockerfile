# One image recipe for the three services; SERVICE picks which one:
#
#   docker build --build-arg SERVICE=api-server    --build-arg PORT=5000 -t techlist/api-server .
#   docker build --build-arg SERVICE=worker-server --build-arg PORT=5001 -t techlist/worker-server .
#   docker build --build-arg SERVICE=client-app    --build-arg PORT=3000 -t techlist/client-app .
#
# Build from the repository root, so the shared techlist module is in the
# context. (docker compose does this for you: see docker-compose.yml.)

ARG GO_VERSION=1.26

# Stage 1: the module files first, so the download layer is rebuilt only
# when they change. The service builds as its own module (GOWORK=off): its
# go.mod replaces the shared techlist module with ../techlist, so nothing
# the other workspace modules need (the dev stack, the benchmark) is fetched.
FROM golang:${GO_VERSION}-bookworm AS build
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "set --build-arg SERVICE=api-server|worker-server|client-app" >&2; exit 1; }
WORKDIR /src
ENV CGO_ENABLED=0 GOWORK=off
COPY techlist/go.mod techlist/go.sum techlist/
COPY ${SERVICE}/go.mod ${SERVICE}/go.sum ${SERVICE}/
RUN cd ${SERVICE} && go mod download

# Then the sources: the shared module and this service only.
COPY techlist/ techlist/
COPY ${SERVICE}/ ${SERVICE}/
RUN cd ${SERVICE} && go build -trimpath -ldflags='-s -w' -o /out/service .

# Static binary on distroless: CA certificates and tzdata, no shell, runs as
# the image's nonroot user (numeric, so runAsNonRoot checks can see it).
# The binary is /app/service whatever SERVICE is: an exec-form ENTRYPOINT
# cannot expand a build argument.
FROM gcr.io/distroless/static-debian12:nonroot
ARG PORT=5000
WORKDIR /app
COPY --from=build /out/service /app/service
ENV PORT=${PORT}
EXPOSE ${PORT}
USER 65532:65532
# No shell in the image: the binary checks itself (GET http://127.0.0.1:$PORT/healthz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["/app/service", "-healthcheck"]
ENTRYPOINT ["/app/service"]
