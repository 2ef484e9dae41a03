// zod, as every module here imports it (`import * as z from './zod'`): the tree-shakable zod/mini
// API with English messages. Classic zod builds each schema through a large class hierarchy at
// import time and bundles all its locales; in a handler's init it was the largest single cost
// (docs/benchmarks.md, "Cold start").

import { en } from 'zod/locales'
import { config } from 'zod/mini'

config(en())

export * from 'zod/mini'

/**
 * A schema built on its first use rather than at import: a function's init builds none, and each
 * function builds only the schemas its route parses.
 */
export function builtOnFirstUse<T>(build: () => T): () => T {
  let schema: T | undefined
  return () => {
    schema ??= build()
    return schema
  }
}
