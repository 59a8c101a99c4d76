package backoff

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{"default", Default, 10, false},
		{"spaces", " 1s, 2s ,3s", 3, false},
		{"not increasing", "5s,5s", 0, true},
		{"garbage", "5s,soon", 0, true},
		{"negative", "-1s", 0, true},
		{"empty", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if len(s.Delays) != tc.want {
				t.Fatalf("got %d delays", len(s.Delays))
			}
		})
	}
}

func TestNext(t *testing.T) {
	s, _ := Parse("5s,30s,2m")
	s.Jitter = 0
	tests := []struct {
		name      string
		attempt   int
		minWait   time.Duration
		tier, due time.Duration
	}{
		{"first failure", 1, 0, 5 * time.Second, 5 * time.Second},
		{"second failure", 2, 0, 30 * time.Second, 30 * time.Second},
		{"past the end repeats the last", 9, 0, 2 * time.Minute, 2 * time.Minute},
		{"retry-after moves to a later tier", 1, 20 * time.Second, 30 * time.Second, 30 * time.Second},
		{"retry-after within the tier", 1, 3 * time.Second, 5 * time.Second, 5 * time.Second},
		{"retry-after beyond every tier waits that long", 1, time.Hour, 2 * time.Minute, time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tier, due := s.Next(tc.attempt, tc.minWait)
			if tier != tc.tier || due != tc.due {
				t.Fatalf("Next = %v, %v; want %v, %v", tier, due, tc.tier, tc.due)
			}
		})
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	s, _ := Parse("10s")
	for range 1000 {
		_, d := s.Next(1, 0)
		if d < 10*time.Second || d > 11*time.Second {
			t.Fatalf("delay %v outside [10s, 11s]", d)
		}
	}
}
