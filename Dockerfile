# The rig's own image, for docker-compose.yml: FROM scratch around the static
# binary `make compose-build` writes (there is no registry here, so no base
# image). Build it with `make compose-up`, or that target then
# `docker-compose up --build`.
FROM scratch
COPY bin/compose/relaysoak /relaysoak
ENTRYPOINT ["/relaysoak"]
