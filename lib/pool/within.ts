// Bounds a promise by a time limit without cancelling it: what the caller awaits settles by then.

/**
 * Settles as `work` does, or rejects with `onTimeout` (an error, or a function making one) after
 * `ms`, unless `waived()` says otherwise at that moment (then `work` goes on unbounded here). With
 * `ms` Infinity no timer is set. `work` keeps running; its late rejection is swallowed so that it
 * never surfaces as an unhandled rejection.
 */
export function within<T>(
  work: Promise<T>,
  ms: number,
  onTimeout: Error | (() => Error),
  waived?: () => boolean,
): Promise<T> {
  if (ms === Number.POSITIVE_INFINITY) return work
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        if (waived?.()) return
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
