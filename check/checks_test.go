package check

import (
	"net/http"
	"testing"

	"github.com/resctl/resctl/quantity"
)

func ptr[T any](v T) *T { return &v }

func TestChecks_Verify(t *testing.T) {
	body := []byte(`{"order":{"id":7,"items":[{"sku":"a-1"}]},"state":"PAID"}`)
	ok := Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Size: int64(len(body)), Body: body}
	tests := []struct {
		name string
		spec Spec
		grpc bool
		resp Response
		want string
	}{
		{name: "all pass", spec: Spec{Status: []Code{"200"}, BodyContains: "PAID", BodyMatches: `^\{`,
			Headers:  map[string]Header{"content-type": {Matches: "json$"}, "X-Gone": {Present: ptr(false)}},
			BodySize: &Size{Min: ptr(quantity.Bytes(10))},
			JSON:     map[string]Value{"order.items.0.sku": {`"a-1"`}, "/order/id": {`7`}}}, resp: ok},
		{name: "status not allowed", spec: Spec{Status: []Code{"201", "202"}}, resp: ok, want: "status 200 not in [201, 202]"},
		{name: "header missing", spec: Spec{Headers: map[string]Header{"X-Id": {Present: ptr(true)}}}, resp: ok, want: "header X-Id missing"},
		{name: "header value", spec: Spec{Headers: map[string]Header{"Content-Type": {Equals: ptr("text/plain")}}}, resp: ok, want: `header Content-Type is not "text/plain"`},
		{name: "exact size", spec: Spec{BodySize: &Size{Exact: ptr(quantity.Bytes(3))}}, resp: ok, want: "body size not 3B"},
		{name: "too big", spec: Spec{BodySize: &Size{Max: ptr(quantity.Bytes(10))}}, resp: ok, want: "body size over 10B"},
		{name: "contains", spec: Spec{BodyContains: "REFUNDED"}, resp: ok, want: `body does not contain "REFUNDED"`},
		{name: "contains beyond the kept bytes", spec: Spec{BodyContains: "REFUNDED"}, resp: Response{Size: 5 << 20, Body: body},
			want: `body does not contain "REFUNDED" (in its first 57B)`},
		{name: "matches", spec: Spec{BodyMatches: `^\[`}, resp: ok, want: "body does not match \"^\\\\[\""},
		{name: "field the response does not have", spec: Spec{JSON: map[string]Value{"order.customer": {`"x"`}}}, resp: ok, want: "json order.customer missing"},
		{name: "index out of range", spec: Spec{JSON: map[string]Value{"order.items.3.sku": {`"a-1"`}}}, resp: ok, want: "json order.items.3.sku missing"},
		{name: "field with another value", spec: Spec{JSON: map[string]Value{"state": {`"NEW"`}}}, resp: ok, want: `json state is not "NEW"`},
		{name: "not JSON", spec: Spec{JSON: map[string]Value{"state": {`"PAID"`}}}, resp: Response{Status: 200, Body: []byte(`{"sta`)}, want: "body is not JSON"},
		{name: "grpc status", spec: Spec{Status: []Code{"ok"}}, grpc: true, resp: Response{GRPCCode: "NotFound"}, want: "status NotFound not in [OK]"},
		{name: "grpc status by grpc-go name", spec: Spec{Status: []Code{"NotFound"}}, grpc: true, resp: Response{GRPCCode: "NotFound"}},
		{name: "grpc int64 field as a string, proto name", spec: Spec{JSON: map[string]Value{"order_id": {`42`}}}, grpc: true,
			resp: Response{GRPCCode: "OK", Body: []byte(`{"orderId":"42"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(&tt.spec, tt.grpc)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := c.Verify(tt.resp); got != tt.want {
				t.Errorf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCompile_Refuses(t *testing.T) {
	for name, s := range map[string]Spec{
		"bad regexp":        {BodyMatches: "("},
		"bad status":        {Status: []Code{"2xx"}},
		"empty header":      {Headers: map[string]Header{"A": {}}},
		"empty path step":   {JSON: map[string]Value{"a..b": {"1"}}},
		"grpc body check":   {BodyContains: "x"},
		"unknown grpc code": {Status: []Code{"FINE"}},
	} {
		if _, err := Compile(&s, name == "grpc body check" || name == "unknown grpc code"); err == nil {
			t.Errorf("%s: Compile accepted %+v", name, s)
		}
	}
}
