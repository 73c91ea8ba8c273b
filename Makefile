.PHONY: fmt check test
fmt:
	ruff format .
	ruff check --fix .
check:
	ruff format --check .
	ruff check .
	mypy
test:
	python -m pytest -q
