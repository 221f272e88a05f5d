package engine

import (
	"fmt"
	"strings"
)

// FaultStall makes a stream behave as one without a leader: appends get no
// answer until their deadline. Drills inject it to prove that one
// feature's dead stream does not take the others down.
const FaultStall = "stall"

// FaultLag stops the node's read model of a stream from applying, as on a
// machine starved of CPU or disk, while its replica stays current. Tests
// use it to let the log be trimmed past a node that is behind.
const FaultLag = "lag"

// SetStreamFault injects mode ("" clears it) into stream on this node.
func (e *Engine) SetStreamFault(stream, mode string) error {
	found := false
	for _, s := range Streams {
		found = found || s.Name == stream
	}
	if !found {
		return fmt.Errorf("no stream %q", stream)
	}
	if mode != "" && mode != FaultStall && mode != FaultLag {
		return fmt.Errorf("no fault %q", mode)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults == nil {
		e.faults = map[string]string{}
	}
	if mode == "" {
		delete(e.faults, stream)
	} else {
		e.faults[stream] = mode
	}
	return nil
}

// streamFault is the fault injected into the stream subject belongs to.
// Every append asks: without faults it returns before matching subjects.
func (e *Engine) streamFault(subject string) string {
	e.mu.Lock()
	none := len(e.faults) == 0
	e.mu.Unlock()
	if none {
		return ""
	}
	return e.faultOf(streamOfSubject(subject))
}

// faultOf is the fault injected into stream ("" if none).
func (e *Engine) faultOf(stream string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults[stream]
}

// streamOfSubject names the feature stream that stores subject, or "".
func streamOfSubject(subject string) string {
	for _, s := range Streams {
		for _, sub := range s.Subjects {
			if strings.HasPrefix(subject, strings.TrimSuffix(sub, ">")) {
				return s.Name
			}
		}
	}
	return ""
}
