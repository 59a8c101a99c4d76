module github.com/hookline/hookline/services/ingest

go 1.26

require github.com/hookline/hookline/pkg v0.0.0

replace (
	github.com/hookline/hookline/pkg => ../../pkg
	github.com/hookline/hookline/schemas => ../../schemas
)
