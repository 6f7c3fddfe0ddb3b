# syntax=docker/dockerfile:1
#
# One Dockerfile for every service; the build argument SERVICE picks which:
#
#   docker build --build-arg SERVICE=gateway     -t fanout-gateway .
#   docker build --build-arg SERVICE=router      -t fanout-router .
#   docker build --build-arg SERVICE=publisher   -t fanout-publisher .
#   docker build --build-arg SERVICE=dispatcher  -t fanout-dispatcher .
#   docker build --build-arg SERVICE=market-data -t fanout-market-data .
#
# The services run their TypeScript through tsx (the packages export their src/*.ts; there is no
# compile step), so an image is: Node 24 (LTS) on Debian 13 trixie, the production dependencies of
# one workspace, and the sources of that service and the shared packages. It runs as uid/gid 1000
# (`node` in the base image), numeric so that Kubernetes can verify runAsNonRoot.
#
# Node 24 on trixie is what the gateway's uWebSockets.js build needs: v20.57.0
# (@btc-vision/uwebsockets.js, installed as uws-20-57) ships binaries for Node ABIs 115-141 linked
# against glibc >= 2.38; bookworm (glibc 2.36) cannot load them, and Alpine (musl) loads none.
# The older build (uWebSockets.js v20.30.0, for Node 20 on Debian 12 development machines) has no
# Node 24 binary and is left out of the image. services/gateway/src/native-uws.ts picks the build
# and refuses uWebSockets.js' slow JavaScript fallback; the gateway's image build runs it.
#
# Pin the base by digest in your registry mirror if you need bit-for-bit rebuilds:
#   --build-arg NODE_IMAGE=node:24.22.3-trixie-slim@sha256:<digest>
ARG NODE_IMAGE=node:24.22.3-trixie-slim

# ---- base: the runtime every stage shares -------------------------------------------------------
FROM ${NODE_IMAGE} AS base
# tini as PID 1: forwards SIGTERM to node (the graceful drain) and reaps the esbuild helper process
# the gateway starts for its client bundle.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

# ---- manifests: only the package.json files, so the dependency layer is rebuilt only when a -----
# manifest or the lock file changes, not on every source edit.
FROM base AS manifests
COPY packages/ packages/
COPY services/ services/
RUN find packages services -mindepth 2 -maxdepth 2 ! -name package.json -exec rm -rf {} +

# ---- deps: production dependencies of one workspace (and the root's) ----------------------------
FROM base AS deps
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<gateway|router|publisher|dispatcher|market-data>" >&2; exit 1; }
COPY package.json package-lock.json ./
COPY --from=manifests /app/ ./
# uWebSockets.js ships binaries for every platform and Node ABI; only the one this image runs is
# kept (linux, this architecture, this Node's ABI: 137 on Node 24), and the v20.30 build, which has
# none for Node 24, is removed. Type declarations and markdown are not needed at run time.
RUN --mount=type=cache,target=/root/.npm \
    test -f "services/${SERVICE}/package.json" || { echo "no workspace services/${SERVICE}" >&2; exit 1; }; \
    npm ci --omit=dev --workspace="services/${SERVICE}" --include-workspace-root \
 && arch="$(node -p process.arch)" && abi="$(node -p process.versions.modules)" \
 && if [ -d node_modules/uws-20-57 ]; then \
      find node_modules/uws-20-57 -name '*.node' ! -name "uws_linux_${arch}_${abi}.node" -delete; \
      test -f "node_modules/uws-20-57/uws_linux_${arch}_${abi}.node"; \
      rm -rf node_modules/uWebSockets.js; \
    fi \
 && find node_modules -name '*.md' -delete \
 && find node_modules -name '*.d.ts' -delete

# ---- runtime: the image ------------------------------------------------------------------------
FROM base AS runtime
ARG SERVICE
# Sources and dependencies stay owned by root: the process (uid 1000) can read them, not change them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
# Every workspace's sources (about 2 MB), not only this service's: workspaces import each other
# (market-data imports @fanout/publisher's producer library), and npm links them all.
COPY packages/ packages/
COPY services/ services/
# The entry must exist, and on the gateway a native uWebSockets.js binary must load, through the
# loader the gateway starts with: checked at build time too, so a wrong base image fails the build,
# not the first rollout.
RUN test -f "services/${SERVICE}/src/main.ts" \
 && if [ "${SERVICE}" = gateway ]; then \
      node --import tsx --input-type=module -e "const { loadUws } = await import('./services/gateway/src/native-uws.ts'); const { build } = loadUws(); console.log('uWebSockets.js ' + build.upstream + ' (' + build.source + '): native binary loaded');"; \
    fi
# tsx caches compiled files under the temp dir; /tmp is the only writable path a read-only root
# filesystem needs (the Helm chart mounts an emptyDir there).
ENV FANOUT_SERVICE=${SERVICE} \
    FANOUT_HOST=0.0.0.0 \
    KAFKAJS_NO_PARTITIONER_WARNING=1 \
    TMPDIR=/tmp
USER 1000:1000
# Listen port (FANOUT_PORT); the chart and compose set it per service. market-data listens on none.
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sh", "-c", "exec node --import tsx \"services/${FANOUT_SERVICE}/src/main.ts\""]
