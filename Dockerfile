FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY api api
COPY centralita centralita
COPY voice voice
COPY ivr_flows ivr_flows
RUN pip install --no-cache-dir .
RUN useradd --system centralita
USER centralita
EXPOSE 8000
CMD ["centralita", "serve", "--host", "0.0.0.0", "--port", "8000"]
