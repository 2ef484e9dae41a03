// The logger the benches give their registries: their own lines would only interleave with the tables.
import type { Log } from '../lib'

export const silent: Log = { debug() {}, info() {}, warn() {}, error() {} }
