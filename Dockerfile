FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Dependencies first so code edits don't reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p gateway schema resolvers loaders && touch gateway/__init__.py schema/__init__.py \
        resolvers/__init__.py loaders/__init__.py \
    && pip install . && pip uninstall -y funnelgate

COPY gateway gateway
COPY schema schema
COPY resolvers resolvers
COPY loaders loaders
RUN pip install --no-deps . && useradd --create-home funnel && mkdir -p /data && chown funnel /data

USER funnel
ENV FUNNEL_DATA_DIR=/data FUNNEL_HOST=0.0.0.0 FUNNEL_PORT=8000
EXPOSE 8000
CMD ["funnelgate", "serve"]
