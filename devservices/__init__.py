"""Development and test services: ``weed mini`` as S3, RabbitMQ and PostgreSQL. Imports nothing of ours."""
