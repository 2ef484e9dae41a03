// A deleted order's reference may be used again: uniqueness holds among live orders only.
export default `
ALTER TABLE orders DROP CONSTRAINT orders_reference_key;
CREATE UNIQUE INDEX orders_reference_live ON orders (reference) WHERE deleted_at IS NULL;
`
