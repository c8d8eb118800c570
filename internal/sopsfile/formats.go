package sopsfile

import (
	"path/filepath"
	"strings"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/stores/ini"
	"github.com/getsops/sops/v3/stores/json"
	"github.com/getsops/sops/v3/stores/yaml"
)

// Format is how a file's tree is stored, chosen by its name as the sops CLI
// does: *.yaml/*.yml, *.json, *.env (dotenv), *.ini, anything else binary
// (the whole file is one value, stored as JSON).
type Format string

// The formats SOPS stores.
const (
	FormatYAML   Format = "yaml"
	FormatJSON   Format = "json"
	FormatDotenv Format = "dotenv"
	FormatINI    Format = "ini"
	FormatBinary Format = "binary"
)

// FormatOf returns the format of the file named name.
func FormatOf(name string) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return FormatYAML
	case ".json":
		return FormatJSON
	case ".env":
		return FormatDotenv
	case ".ini":
		return FormatINI
	}
	return FormatBinary
}

// store returns the SOPS store of f.
func (f Format) store() sops.Store {
	switch f {
	case FormatYAML:
		return yaml.NewStore(&config.YAMLStoreConfig{})
	case FormatJSON:
		return json.NewStore(&config.JSONStoreConfig{})
	case FormatDotenv:
		return dotenv.NewStore(&config.DotenvStoreConfig{})
	case FormatINI:
		return ini.NewStore(&config.INIStoreConfig{})
	}
	return json.NewBinaryStore(&config.JSONBinaryStoreConfig{})
}
