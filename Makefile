.PHONY: run test setup lint format

run:  ## set up, then run the service on https://localhost:8443 (data in ./data)
	scripts/run-service

test:  ## set up, then ruff; every test on SQLite, the database tests on PostgreSQL
	scripts/test

setup:
	scripts/setup

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .
