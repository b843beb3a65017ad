"""The rules engine: a declarative ruleset (YAML + CEL) judges each department."""
