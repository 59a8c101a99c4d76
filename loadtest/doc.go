// Package loadtest drives Hookline from the outside: the end-to-end tests
// in e2e/, and the load generator, sink and report of the benchmarks.
package loadtest
