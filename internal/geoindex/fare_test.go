package geoindex

import (
	"math"
	"testing"
)

func TestEstimateFare(t *testing.T) {
	seoul := Rates{Base: 4800, PerKm: 1000, Minimum: 4800}
	tests := []struct {
		name   string
		meters float64
		r      Rates
		want   int64
	}{
		{"zero distance pays the base", 0, seoul, 4800},
		{"8.8 km", 8800, seoul, 13600},
		{"a started metre is charged", 8800.2, seoul, 13700},
		{"rounded up to 100 won", 1050, seoul, 5900},
		{"exact multiple stays", 1000, seoul, 5800},
		{"minimum applies", 100, Rates{Base: 0, PerKm: 1000, Minimum: 3000}, 3000},
		{"minimum is rounded too", 0, Rates{Minimum: 3050}, 3100},
		{"negative distance", -5, seoul, 4800},
		{"NaN distance", math.NaN(), seoul, 4800},
		{"negative rates are zero", 5000, Rates{Base: -100, PerKm: -1000, Minimum: -1}, 0},
		{"infinite distance is capped", math.Inf(1), seoul, 4800 + 1<<53 + 8},
		{"long ride at a high rate", 1e9, Rates{PerKm: 1e9}, 1e15},
		{"huge rate saturates", 2000, Rates{PerKm: math.MaxInt64}, math.MaxInt64 / 100 * 100},
		{"huge base saturates", 10, Rates{Base: math.MaxInt64, PerKm: 1}, math.MaxInt64 / 100 * 100},
		{"highest rate, one metre", 1, Rates{PerKm: math.MaxInt64 - 5}, 9223372036854800},
	}
	for _, tt := range tests {
		if got := EstimateFare(tt.meters, tt.r); got != tt.want {
			t.Errorf("%s: EstimateFare(%v, %+v) = %d, want %d", tt.name, tt.meters, tt.r, got, tt.want)
		}
	}
}

func TestEtaSeconds(t *testing.T) {
	tests := []struct {
		meters, speed float64
		want          int
	}{
		{8800, 10, 880},
		{8801, 10, 881},
		{0, 10, 0},
		{-1, 10, 0},
		{math.NaN(), 10, 0},
		{1000, 0, -1},
		{1000, -3, -1},
		{1000, math.NaN(), -1},
		{math.Inf(1), 10, math.MaxInt32},
		{1000, math.Inf(1), 0},
	}
	for _, tt := range tests {
		if got := EtaSeconds(tt.meters, tt.speed); got != tt.want {
			t.Errorf("EtaSeconds(%v, %v) = %d, want %d", tt.meters, tt.speed, got, tt.want)
		}
	}
}
