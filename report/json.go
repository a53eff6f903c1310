package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotReport is returned by ReadJSON for a file that is not a resctl
// report, or is one of a schema this version cannot read.
var ErrNotReport = errors.New("not a resctl report")

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReport, err)
	}
	if r.Schema == "" {
		return nil, fmt.Errorf("%w: no schema field", ErrNotReport)
	}
	if r.Schema != Schema {
		if strings.HasPrefix(r.Schema, "resctl.report/") {
			return nil, fmt.Errorf("%w: schema %q is newer than this resctl reads (%s); upgrade resctl", ErrNotReport, r.Schema, Schema)
		}
		return nil, fmt.Errorf("%w: unknown schema %q", ErrNotReport, r.Schema)
	}
	return &r, nil
}
