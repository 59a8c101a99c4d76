package main

import (
	"slices"
	"testing"
)

func TestRestarted(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[string]int
		want          string
	}{
		{"none", map[string]int{}, map[string]int{}, ""},
		{"none since", map[string]int{"matcher": 1}, map[string]int{"matcher": 1}, ""},
		{"new ones, sorted", map[string]int{"matcher": 1}, map[string]int{"sender": 1, "matcher": 3},
			", exited by itself and restarted: matcher 2 time(s), sender 1 time(s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := restarted(tc.before, tc.after); got != tc.want {
				t.Errorf("restarted() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChooseFaultRounds(t *testing.T) {
	tests := []struct {
		name    string
		asked   []string
		want    []string
		wantErr bool
	}{
		{"all by default", nil, roundNames(), false},
		{"one round", []string{"faults-3-brokers"}, []string{"faults-3-brokers"}, false},
		{"a benchmark is no round", []string{"throughput"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chosen, err := choose(options{faults: true, scenarios: tc.asked, payload: 1024})
			if (err != nil) != tc.wantErr {
				t.Fatalf("choose: %v, want error %v", err, tc.wantErr)
			}
			var got []string
			for _, sc := range chosen {
				got = append(got, sc.name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("chose %v, want %v", got, tc.want)
			}
		})
	}
}
