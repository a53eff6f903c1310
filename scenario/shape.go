package scenario

import (
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/quantity"
)

// PhaseRate is a phase's own load: a constant rate (rate: 200/s), or one
// shape — a linear ramp, equal stairs, or a spike — written as a one-key
// map. Without it a phase runs at load.rate.
type PhaseRate struct {
	// Constant is the rate of `rate: 200/s`.
	Constant quantity.Rate
	rateShape
	set bool
	// keys counts the keys of the map form, known or not; nulls are the
	// shapes written with no parameters (ramp:), which decode to nothing.
	keys  int
	nulls []string
}

// rateShape is the map form of a phase's rate; exactly one key is set.
type rateShape struct {
	// Ramp moves the rate linearly over the phase.
	Ramp *Ramp `yaml:"ramp"`
	// Steps divides the phase into equal stretches at these rates.
	Steps []quantity.Rate `yaml:"steps"`
	// Spike runs at a base rate with a burst.
	Spike *Spike `yaml:"spike"`
}

// Ramp is a linear change of rate over a phase: a warm-up, a soak that
// climbs to find a breaking point.
type Ramp struct {
	// From is the rate at the phase's start.
	From quantity.Rate `yaml:"from"`
	// To is the rate at its end.
	To quantity.Rate `yaml:"to"`
}

// Spike is a burst at Peak rate from At into the phase, for For; the rest
// of the phase runs at Base (default load.rate).
type Spike struct {
	// Base is the rate outside the spike; default load.rate.
	Base quantity.Rate `yaml:"base"`
	// Peak is the rate during the spike.
	Peak quantity.Rate `yaml:"peak"`
	// At is when into the phase the spike starts.
	At time.Duration `yaml:"at"`
	// For is how long the spike lasts.
	For time.Duration `yaml:"for"`
}

// IsSet says whether the phase gave a rate of its own.
func (r PhaseRate) IsSet() bool { return r.set }

// DecodeNode implements strictyaml.NodeDecoder.
func (r *PhaseRate) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	r.set = true
	if n.Kind == yaml.ScalarNode {
		d.Decode(n, reflect.ValueOf(&r.Constant).Elem(), path)
		return
	}
	r.keys = len(n.Content) / 2
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			r.nulls = append(r.nulls, n.Content[i].Value)
		}
	}
	d.DecodeStruct(n, reflect.ValueOf(&r.rateShape).Elem(), path)
}

// check reports what is wrong with a phase's rate; base is load.rate.
func (r *PhaseRate) check(report func(path, format string, args ...any), path string, phase time.Duration, base quantity.Rate) {
	if !r.set {
		return
	}
	shapes := 0
	for _, set := range []bool{r.Ramp != nil, r.Steps != nil, r.Spike != nil} {
		if set {
			shapes++
		}
	}
	switch {
	case shapes == 0 && r.Constant == 0 && r.keys == 0:
		report(path, "give a rate (200/s) or one shape: ramp, steps or spike")
	case shapes == 0 && len(r.nulls) > 0:
		for _, k := range r.nulls {
			report(path+"."+k, "give the shape its parameters, e.g. ramp: {from: 10/s, to: 100/s}")
		}
	case shapes > 1:
		report(path, "give one shape: ramp, steps or spike")
	case r.Steps != nil && len(r.Steps) == 0:
		report(path+".steps", "give at least one rate, e.g. [50/s, 100/s, 200/s]")
	case r.Ramp != nil && r.Ramp.From == 0 && r.Ramp.To == 0:
		report(path+".ramp", "from and to are both zero: the phase would send nothing")
	case r.Spike != nil:
		sp := r.Spike
		if sp.Base == 0 {
			sp.Base = base
		}
		if sp.Base == 0 {
			report(path+".spike.base", "is required when load.rate is not set: the rate outside the spike")
		}
		if sp.Peak == 0 {
			report(path+".spike.peak", "is required, e.g. peak: 1000/s")
		}
		if sp.At < 0 || sp.At >= phase {
			report(path+".spike.at", "must be inside the phase (0 to %v)", phase)
		}
		if sp.For <= 0 {
			report(path+".spike.for", "must be above zero, e.g. for: 2s")
		}
	}
}
