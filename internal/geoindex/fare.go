package geoindex

import (
	"math"
	"math/bits"
)

// Rates prices a ride in KRW (won, which has no minor unit below 1).
// Negative rates are treated as zero.
type Rates struct {
	Base    int64 // charged once per ride
	PerKm   int64 // charged per kilometre, pro rata by the started metre
	Minimum int64 // the least a ride costs
}

// maxFareMeters bounds the distance so that its conversion to an integer is
// exact and defined; no ride comes near it.
const maxFareMeters = 1 << 53

// EstimateFare returns the fare in won for a ride of the given length: Base,
// plus PerKm/1000 for every started metre (rounded up to the won), at least
// Minimum, and then rounded up to a multiple of 100 won, so 13,601 won becomes
// 13,700 and 13,600 stays. A negative or NaN distance counts as zero. The
// arithmetic saturates instead of overflowing.
func EstimateFare(meters float64, r Rates) int64 {
	if !(meters > 0) {
		meters = 0
	}
	m := int64(math.Ceil(min(meters, maxFareMeters)))
	base, perKm, minimum := max(r.Base, 0), max(r.PerKm, 0), max(r.Minimum, 0)

	fare := satAdd(base, perMetre(m, perKm))
	fare = max(fare, minimum)
	if fare > math.MaxInt64-99 {
		return math.MaxInt64 / 100 * 100
	}
	return ceilDiv(fare, 100) * 100
}

// EtaSeconds returns the time to drive meters at speedMps, rounded up to the
// second and capped at math.MaxInt32. A negative or NaN distance counts as
// zero; a speed that is not positive yields -1, meaning unknown.
func EtaSeconds(meters float64, speedMps float64) int {
	if !(speedMps > 0) {
		return -1
	}
	if !(meters > 0) {
		return 0
	}
	return int(math.Ceil(min(meters/speedMps, math.MaxInt32)))
}

// perMetre returns ceil(m*perKm/1000) for non-negative m and perKm, computed
// in 128 bits and stopping at math.MaxInt64.
func perMetre(m, perKm int64) int64 {
	hi, lo := bits.Mul64(uint64(m), uint64(perKm))
	lo, carry := bits.Add64(lo, 999, 0)
	hi += carry
	if hi >= 1000 {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, 1000)
	return int64(min(q, math.MaxInt64))
}

// satAdd adds non-negative values, stopping at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// ceilDiv divides a non-negative a by a positive b, rounding up.
func ceilDiv(a, b int64) int64 {
	return a/b + min(a%b, 1)
}
