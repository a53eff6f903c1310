package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/scenario"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of scenario files",
		Long: `Print the JSON Schema of scenario files, for editors that complete and check
YAML against a schema (for example with a "# yaml-language-server: $schema="
comment). The same schema is checked in as docs/scenario.schema.json.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			b, err := scenario.JSONSchema()
			if err != nil {
				return withCode(exitRunFailed, fmt.Errorf("generate schema: %w", err), "")
			}
			_, err = fmt.Fprintln(c.OutOrStdout(), string(b))
			return err
		},
	}
}
