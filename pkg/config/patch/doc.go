// Package patch parses and applies user patches to a single Plinth machine
// configuration document (apiVersion plinth.dev/v1alpha1, kind MachineConfig).
//
// Patches are given on the command line either inline or as "@path/to/file"
// (see [Load] and [LoadAll]); [Parse] turns patch text into one or more
// [Patch] values and [Apply] applies them, in order, to a YAML document.
// Patch text may be YAML or JSON. Two kinds of patches are recognized by the
// shape of each YAML document in the patch text:
//
// # JSON patches (RFC 6902)
//
// A document whose top-level node is a sequence of mappings that all have an
// "op" key is an RFC 6902 JSON patch. Operations (add, remove, replace, move,
// copy, test) are applied one at a time, in order, to the configuration
// converted to JSON; an error names the failing operation by its 1-based
// position, kind and path, e.g.
//
//	JSON patch (inline): operation 2 (remove /machine/foo): ...
//
// Integers survive the JSON round trip as integers (mtu: 1500 stays 1500).
// Any other top-level sequence is rejected. The result must still be a
// mapping.
//
// # Strategic merge patches
//
// A document whose top-level node is a mapping is a strategic merge patch, a
// partial configuration that is merged into the document:
//
//   - Mappings merge recursively, key by key. Keys of the document that are not
//     in the patch are kept.
//   - Scalars in the patch replace the document's value. This includes null:
//     "key: null" sets the value to null, it does not delete the key.
//   - A patch value that is a mapping containing "$patch: delete" removes the
//     key from the result (there is no error if the key is absent); the other
//     keys of that mapping are ignored. "delete" is the only supported
//     $patch directive; anything else is an error, as is $patch at the top
//     level of a patch.
//   - Lists of named items are merged item by item. A list qualifies when both
//     the document's list and the patch's list are non-empty and every item of
//     both is a mapping that holds the same merge key with a scalar value. The
//     candidate merge keys are tried in this order: name, path, destination,
//     vlanId, endpoint; the first one that qualifies is used. Patch items are
//     then processed in order: a patch item whose key equals the key of
//     existing items is merged recursively into each of them (in place, so the
//     document's order is kept); a patch item with no match is appended; a patch
//     item that also contains "$patch: delete" removes every matching item
//     (no error if there is none). Key values match only if they are of the
//     same kind: the string "100" does not match the integer 100.
//   - Every other list in the patch replaces the document's list as a whole.
//     This is a deliberate choice: lists of plain values (nameservers, extra
//     kernel arguments, certificate SANs...) have no identity to merge by, and
//     appending or de-duplicating would make it impossible to remove or
//     reorder entries; replacing makes the result predictable: the list in
//     the patch is exactly the list in the result. In particular, an empty
//     list in a patch clears the document's list. When a list is taken from
//     the patch (replacement, or a new key), items that are mappings
//     containing "$patch: delete" are dropped from it.
//   - If the patch has a top-level apiVersion or kind, it must equal the
//     document's (otherwise Apply fails with an error naming both values).
//     They are never merged otherwise.
//
// A patch text may contain several YAML documents separated by "---"; each
// non-empty document becomes its own [Patch], applied in order. Empty patch
// text is an error.
//
// [Apply] decodes the configuration into a generic tree, applies every patch
// and encodes the result as YAML again. The key order of the result is not
// preserved (keys are sorted): callers are expected to decode the result into
// typed structures. Unquoted YAML timestamps are kept as strings.
package patch
