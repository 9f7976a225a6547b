FROM python:3.11-slim
# espeak-ng and ffmpeg: `centralita prompts build` (the compose stack renders Asterisk's prompts with it)
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY api api
COPY centralita centralita
COPY voice voice
COPY dialer dialer
COPY routing routing
COPY messaging messaging
COPY reporting reporting
COPY ivr_flows ivr_flows
COPY asterisk asterisk
RUN pip install --no-cache-dir .
ENV CENTRALITA_FLOWS_DIR=/app/ivr_flows
RUN useradd --system centralita
USER centralita
# 8000: the API and pages; 4573: FastAGI and 9092: AudioSocket (speech turns), for Asterisk (allow its
# address with CENTRALITA_AGI_ALLOWED and CENTRALITA_AUDIOSOCKET_ALLOWED_PEERS)
EXPOSE 8000 4573 9092
CMD ["centralita", "serve", "--host", "0.0.0.0", "--port", "8000"]
