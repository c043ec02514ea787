"""Development and test services: ``weed mini`` as S3, and a local RabbitMQ. Imports nothing of ours."""
