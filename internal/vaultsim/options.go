package vaultsim

import (
	"fmt"
	"time"
)

// Size presets accepted by Options.Size and `vwload init --size`.
const (
	SizeSmall  = "small"
	SizeMedium = "medium"
	SizeLarge  = "large"
)

// DefaultEpoch is the fixed "now" of fixtures, so the same seed gives the same rows.
var DefaultEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// Options say what Create puts in a data folder. Zero counts take the preset's value.
type Options struct {
	// Seed makes the fixture deterministic: the same seed gives the same rows and files.
	Seed int64
	// Size is a preset (small, medium, large); empty means small.
	Size string

	Users       int
	Orgs        int
	Collections int // across all organizations
	Folders     int // across all users
	Ciphers     int
	Attachments int
	Sends       int // a third of them are file sends
	Devices     int
	Events      int

	// AttachmentMinSize and AttachmentMaxSize bound attachment file sizes in bytes.
	AttachmentMinSize int
	AttachmentMaxSize int

	// Epoch is the fixture's "now"; zero means DefaultEpoch.
	Epoch time.Time
}

// Preset returns the options of a named size preset.
func Preset(size string) (Options, error) {
	switch size {
	case "", SizeSmall:
		return Options{Size: SizeSmall, Users: 1, Orgs: 0, Collections: 0, Folders: 5,
			Ciphers: 50, Attachments: 5, Sends: 3, Devices: 2, Events: 20,
			AttachmentMinSize: 1 << 10, AttachmentMaxSize: 20 << 10}, nil
	case SizeMedium:
		return Options{Size: SizeMedium, Users: 20, Orgs: 2, Collections: 10, Folders: 60,
			Ciphers: 2000, Attachments: 200, Sends: 30, Devices: 40, Events: 500,
			AttachmentMinSize: 1 << 10, AttachmentMaxSize: 50 << 10}, nil
	case SizeLarge:
		return Options{Size: SizeLarge, Users: 200, Orgs: 10, Collections: 60, Folders: 600,
			Ciphers: 20000, Attachments: 2000, Sends: 300, Devices: 400, Events: 5000,
			AttachmentMinSize: 1 << 10, AttachmentMaxSize: 50 << 10}, nil
	}
	return Options{}, fmt.Errorf("unknown size %q (want small, medium or large)", size)
}

// withDefaults fills zero fields from the preset named by o.Size.
func (o Options) withDefaults() (Options, error) {
	p, err := Preset(o.Size)
	if err != nil {
		return o, err
	}
	p.Seed = o.Seed
	set := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	set(&p.Users, o.Users)
	set(&p.Orgs, o.Orgs)
	set(&p.Collections, o.Collections)
	set(&p.Folders, o.Folders)
	set(&p.Ciphers, o.Ciphers)
	set(&p.Attachments, o.Attachments)
	set(&p.Sends, o.Sends)
	set(&p.Devices, o.Devices)
	set(&p.Events, o.Events)
	set(&p.AttachmentMinSize, o.AttachmentMinSize)
	set(&p.AttachmentMaxSize, o.AttachmentMaxSize)
	if p.AttachmentMaxSize < p.AttachmentMinSize {
		p.AttachmentMaxSize = p.AttachmentMinSize
	}
	if p.Users < 1 {
		p.Users = 1
	}
	if p.Orgs > 0 && p.Collections < p.Orgs {
		p.Collections = p.Orgs
	}
	p.Epoch = o.Epoch
	if p.Epoch.IsZero() {
		p.Epoch = DefaultEpoch
	}
	return p, nil
}
