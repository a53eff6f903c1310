package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr string
	}{
		{"json", FormatJSON, ""},
		{"html", FormatHTML, ""},
		{"junit", FormatJUnit, ""},
		{"markdown", FormatMarkdown, ""},
		{"pdf", "", `unknown report format "pdf"; known formats: json, html, junit, markdown`},
		{"", "", "unknown report format"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseFormat(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
}

func TestWriteFile_EveryFormat(t *testing.T) {
	dir := t.TempDir()
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			path := filepath.Join(dir, "sub", f.FileName())
			if err := WriteFile(path, f, richFixture()); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() == 0 || st.Mode().Perm() != 0o644 {
				t.Errorf("%s: size %d, mode %v", path, st.Size(), st.Mode().Perm())
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(entries) != len(Formats) {
		t.Errorf("directory holds %d files, want %d (no temp files left)", len(entries), len(Formats))
	}
}

func TestWriteFile_UnwritableKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, Format("pdf"), richFixture()); err == nil {
		t.Fatal("unknown format written")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("a failed write replaced the file with %q", b)
	}
}
