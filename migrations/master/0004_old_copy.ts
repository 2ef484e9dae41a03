// The second phase of a move in the catalog: after the flip, the cluster whose (fenced) old copy is
// still to drop. A move cut short there is finished by posting it again. A tenant is in one phase at
// most: claimed (`moving_to`), or flipped with its old copy left (`old_copy_on`).
export default `
ALTER TABLE tenants
  ADD COLUMN old_copy_on text CHECK (old_copy_on ~ '^[a-z][a-z0-9_-]{0,31}$'),
  ADD CONSTRAINT tenants_one_move_phase CHECK (moving_to IS NULL OR old_copy_on IS NULL);
`
