FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY api api
COPY centralita centralita
COPY voice voice
COPY ivr_flows ivr_flows
RUN pip install --no-cache-dir .
ENV CENTRALITA_FLOWS_DIR=/app/ivr_flows
RUN useradd --system centralita
USER centralita
# 8000: the API; 4573: FastAGI, for Asterisk (allow its address with CENTRALITA_AGI_ALLOWED)
EXPOSE 8000 4573
CMD ["centralita", "serve", "--host", "0.0.0.0", "--port", "8000"]
