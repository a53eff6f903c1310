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

// ReadJSON reads a report written by WriteJSON. It checks the schema
// before decoding the rest, so a report of a newer schema, or another
// tool's JSON, is named as such rather than failing on some field's type.
func ReadJSON(rd io.Reader) (*Report, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return nil, fmt.Errorf("%w: a JSON %s, not an object", ErrNotReport, typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("%w: schema field is a JSON %s, not a string", ErrNotReport, typeErr.Value)
		}
		return nil, fmt.Errorf("%w: not JSON: %v", ErrNotReport, err)
	}
	if head.Schema == "" {
		return nil, fmt.Errorf("%w: no schema field", ErrNotReport)
	}
	if head.Schema != Schema {
		if strings.HasPrefix(head.Schema, "resctl.report/") {
			return nil, fmt.Errorf("%w: schema %q is newer than this resctl reads (%s); upgrade resctl", ErrNotReport, head.Schema, Schema)
		}
		return nil, fmt.Errorf("%w: unknown schema %q", ErrNotReport, head.Schema)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: malformed %s report: %v", ErrNotReport, Schema, err)
	}
	return &r, nil
}
