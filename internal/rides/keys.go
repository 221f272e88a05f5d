package rides

import (
	"time"

	"superapp/internal/store"
)

// The RIDES stream's read model in the state store, under "RIDES/". Every
// ride and driver lives here; the rides under way and the drivers online
// are also held in memory (state.go), written through in the same batch
// and loaded back from the active/ and online/ indexes.
//
//	ride/<ride id>                     Ride (codec.go): every ride, whatever its status, with
//	                                   whether its offer's driver still holds it and the
//	                                   latest command time when it was written
//	active/<rider id>                  ride id: the rider's ride that has not ended
//	driver/<driver id>                 online and since (codec.go): every driver who ever went
//	                                   online; the ride a driver is on follows from the rides
//	online/<driver id>                 "": drivers online now
//	ended/<Seq(ended at)>/<ride id>    "": rides by when they ended (Unix ns), for the
//	                                   settlement to look at again after a restart
//	clock                              time (codec.go): the latest command time, written only
//	                                   by a command that wrote no ride. The latest command
//	                                   time applied is the latest of this, the live rides'
//	                                   and the last ended ride's: one key less per step.

func rideKey(id string) string                { return store.Key("ride", id) }
func activeKey(rider string) string           { return store.Key("active", rider) }
func driverKey(id string) string              { return store.Key("driver", id) }
func onlineKey(id string) string              { return store.Key("online", id) }
func endedKey(at time.Time, id string) string { return store.TimeKey(endedIndex, at, id) }

const (
	activePrefix = "active/"
	onlinePrefix = "online/"
	endedIndex   = "ended" // store.TimeKey
	clockKey     = "clock"
)
