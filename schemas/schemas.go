// Package schemas embeds Hookline's Avro schemas, the single source of every
// record shape on Hookline's topics, and the fixed table of their schema ids.
package schemas

import "embed"

// FS holds the current schemas (*.avsc), ids.json, and history/, the
// released versions that the current ones must stay backward compatible with.
//
//go:embed *.avsc ids.json history
var FS embed.FS
