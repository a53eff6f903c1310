package harness

import "testing"

func TestMaxConnsFor(t *testing.T) {
	tests := []struct {
		name    string
		fds     uint64
		proxies int
		want    int
	}{
		{"one proxy, a common limit", 1 << 20, 1, (1<<20 - 256) / 2},
		{"the fds shared by four proxies", 20000, 4, (20000 - 256) / 8},
		{"no proxies counted as one", 4096, 0, (4096 - 256) / 2},
		{"a low limit keeps the floor", 1024, 8, 64},
		{"a limit below the reserve", 100, 1, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maxConnsFor(tt.fds, tt.proxies); got != tt.want {
				t.Errorf("maxConnsFor(%d, %d) = %d, want %d", tt.fds, tt.proxies, got, tt.want)
			}
		})
	}
}
