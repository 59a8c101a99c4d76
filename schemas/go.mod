module github.com/hookline/hookline/schemas

go 1.26
