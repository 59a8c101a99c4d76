// Package condition is Hookline's subscription filter language: a JSON
// condition tree, and optional CEL expressions, evaluated against events.
//
// The matcher compiles each subscription's condition once per subscription
// version with Parse, decodes each event once with DecodeDocument (or
// builds its root with DecodeString and NewDocument), attaches a Memo so
// that the candidates' conditions look each field up once, and then calls
// Match for every candidate subscription. Match does not allocate; a
// five-leaf condition takes well under a microsecond.
//
// # Condition trees
//
// A node is a group or a leaf:
//
//	{"all": [node, ...]}   every child matches (AND)
//	{"any": [node, ...]}   at least one child matches (OR)
//	{"not": node}          the child does not match
//	{"field": "data.status", "op": "eq", "value": "active"}
//
// For example, paid orders over 100 in EUR or USD that are not tests:
//
//	{"all": [
//	  {"field": "type", "op": "prefix", "value": "order."},
//	  {"field": "data.status", "op": "eq", "value": "paid"},
//	  {"field": "data.total", "op": "gt", "value": 100},
//	  {"field": "data.currency", "op": "in", "value": ["EUR", "USD"]},
//	  {"not": {"field": "metadata.test", "op": "eq", "value": "true"}}
//	]}
//
// Fields are paths from the event root (id, type, subject, source, data,
// changed, previous, metadata). Segments are separated by dots, and array
// elements are reached by index either as a segment or in brackets:
// data.items.0.sku and data.items[0].sku are the same path. A numeric
// segment is an index on an array and a key on an object. Keys containing
// '.', '[' or ']' cannot be addressed (use a CEL expression).
//
// Operators (value is the leaf's "value"):
//
//	eq, ne        equal / not equal; value is a string, number, boolean or null
//	in, nin       the field equals one / none of the values in an array
//	gt, gte,      ordered comparison; value is a number, or a string compared
//	lt, lte       bytewise (RFC 3339 timestamps in one format order correctly)
//	exists        the field is present (value true or absent) or absent (false)
//	contains      a string field contains value as a substring, or an array
//	              field has an element equal to value
//	prefix,       a string field starts / ends with value
//	suffix
//	regex         a string field matches the RE2 pattern value (unanchored;
//	              use ^ and $ to anchor)
//
// Comparisons are type-aware, as in JSON: a number never equals a string
// ("1" is not 1), booleans equal only booleans, null equals only null, and
// gt/gte/lt/lte are false unless both sides are numbers or both strings.
// Numbers compare as float64. Ordered comparisons, prefix, suffix and regex
// never match arrays or objects; eq and in do not look inside arrays (use
// contains).
//
// A missing field (an absent key, an index past the end, or a path through
// a scalar or null) matches only ne, nin and exists:false: a missing field is
// not equal to any value, as in Svix's and most rule engines' filters, so
// {"field":"data.status","op":"ne","value":"draft"} matches events without
// a status. Write {"all":[{"field":"data.status","op":"exists"}, ...]} to
// require the field. A field present with the value null exists, equals
// null, and is not missing.
//
// Parse enforces MaxSize, MaxDepth, MaxNodes, MaxListLen, MaxRegexLen,
// MaxFieldLen and MaxFieldSegments, and rejects unknown keys and ops, empty
// groups and values of the wrong type with an *Error that locates the
// problem, such as `all[2].any[0]: unknown op "equals"`; Error.Field turns
// it into the API field name condition.all[2].any[0].op. An absent condition
// (empty or JSON null) parses to a nil *Condition, which matches everything.
//
// # CEL expressions
//
// CompileExpression compiles a CEL rule over the variable event, such as
//
//	event.type == "order.paid" && event.data.total > 100 &&
//	    event.data.items.exists(i, i.sku.startsWith("GIFT-"))
//
// type-checked to produce a bool and limited to ExpressionCostLimit per
// evaluation. CompileValue compiles an expression of any type with a JSON
// form, such as event.data.?nickname.orValue(event.data.name).
//
// An evaluation is bounded in memory as well as in cost: replace, format,
// join and split compute their result's size before building it and fail
// past MaxValueBytes, every string or bytes value a call builds costs one
// unit per ten bytes, matches() takes literal patterns of at most
// MaxRegexProgram instructions, and an evaluation is interrupted after
// MaxEvalTime. One evaluation over the largest event allocates at most
// 16 MiB (FuzzExpressionMemory); docs/limits.md explains each bound.
//
// # Derived fields
//
// CompileDerived compiles one derived field of payload shaping: a path
// under data to set (data.total_eur), a value expression over event
// (event.data.total_cents / 100.0; event numbers are doubles, so divide by
// 100.0, not 100) and an optional JSON default for when the expression fails
// at run time. Derived.Eval returns the value as JSON.
package condition
