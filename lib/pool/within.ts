// Bounds a promise by a time limit without cancelling it: what the caller awaits settles by then.

/**
 * Settles as `work` does, or rejects with `onTimeout` (an error, or a function making one) after
 * `ms`. With `ms` Infinity no timer is set. `work` keeps running; its late rejection is swallowed so
 * that it never surfaces as an unhandled rejection.
 */
export function within<T>(work: Promise<T>, ms: number, onTimeout: Error | (() => Error)): Promise<T> {
  if (ms === Number.POSITIVE_INFINITY) return work
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        work.catch(() => {})
        reject(typeof onTimeout === 'function' ? onTimeout() : onTimeout)
      },
      Math.max(0, ms),
    )
    work.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}

/**
 * Settles as `work` does, unless nothing of an answer has arrived `ms` after it was sent
 * (`answered()` false then): it rejects with `onSilent` at that moment. An answer begun in time
 * leaves `work` unbounded here (a slow statement is the statement timeout's business).
 */
export function firstAnswerWithin<T>(
  work: Promise<T>,
  ms: number,
  answered: () => boolean,
  onSilent: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (answered()) return
      work.catch(() => {})
      reject(onSilent())
    }, ms)
    work.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}
