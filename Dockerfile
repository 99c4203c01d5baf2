# The browser assets (GraphiQL and React UMD bundles) from the npm lockfile, no build step; only the
# files gateway/web/static/vendor.json lists, and their licences, reach the image.
FROM node:20-slim AS web
WORKDIR /web
COPY gateway/web/static/package.json gateway/web/static/package-lock.json gateway/web/static/vendor.json \
     gateway/web/static/copy-vendor.mjs ./
RUN npm ci --no-audit --no-fund && node copy-vendor.mjs /assets

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Dependencies first so code edits don't reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p gateway schema resolvers loaders && touch gateway/__init__.py schema/__init__.py \
        resolvers/__init__.py loaders/__init__.py \
    && pip install . && pip uninstall -y funnelgate

COPY gateway gateway
COPY --from=web /assets/node_modules gateway/web/static/node_modules
COPY schema schema
COPY resolvers resolvers
COPY loaders loaders
RUN pip install --no-deps . && useradd --create-home funnel && mkdir -p /data && chown funnel /data

USER funnel
ENV FUNNEL_DATA_DIR=/data FUNNEL_HOST=0.0.0.0 FUNNEL_PORT=8000
EXPOSE 8000
CMD ["funnelgate", "serve"]
