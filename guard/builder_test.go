package guard_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// kindLog is a KindObserver that writes down each transition with the
// kind it was built for.
type kindLog struct {
	kind string
	got  *[]string
}

func (k kindLog) Transition(policy, from, to string, _ time.Time) {
	*k.got = append(*k.got, k.kind+" "+policy+": "+from+" → "+to)
}

func (k kindLog) ForKind(kind string) guard.Observer {
	k.kind = kind
	return k
}

// A Builder asks a KindObserver for an Observer per policy's kind: the
// breaker and the retry of one owner share its name, and only the kind
// tells their transitions apart.
func TestBuilder_KindObserver(t *testing.T) {
	var got []string
	specs, err := guard.Parse([]byte("- retry: {attempts: 1}\n- breaker: {consecutive_failures: 1, open_for: 1m}\n"), "orders")
	if err != nil {
		t.Fatal(err)
	}
	c, err := guard.NewBuilder(guard.Options{Observer: kindLog{got: &got}}).Build(specs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Do(context.Background(), &guard.Request{Route: "/"}, func(context.Context) guard.Outcome { return guard.Outcome{Status: 503} })
	if want := []string{"breaker orders: closed → open"}; !slices.Equal(got, want) {
		t.Errorf("transitions %q, want %q", got, want)
	}
}
