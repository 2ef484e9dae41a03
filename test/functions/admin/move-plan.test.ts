import { type PlacementRow, planMove } from '../../../functions/admin/move-plan'

const row = (over: Partial<PlacementRow> = {}): PlacementRow => ({
  status: 'active',
  cluster: 'main',
  moving_to: null,
  old_copy_on: null,
  ...over,
})

describe('Function: planMove', () => {
  it('refuses an unknown or deleted tenant with 404', () => {
    expect(() => planMove(undefined, 'b')).toThrow(expect.objectContaining({ status: 404 }))
    expect(() => planMove(row({ status: 'deleted', moving_to: 'b' }), 'b')).toThrow(
      expect.objectContaining({ status: 404, code: 'TENANT_NOT_FOUND' }),
    )
  })

  it('starts a move when none is under way, unless the tenant is there already', () => {
    expect(planMove(row(), 'b')).toEqual({ action: 'start', source: 'main' })
    expect(planMove(row({ status: 'suspended' }), 'b')).toEqual({ action: 'start', source: 'main' })
    expect(() => planMove(row(), 'main')).toThrow(
      expect.objectContaining({ status: 409, code: 'ALREADY_THERE' }),
    )
  })

  it('resumes a move to the same cluster cut short before its flip', () => {
    expect(planMove(row({ moving_to: 'b' }), 'b')).toEqual({ action: 'resume', source: 'main' })
  })

  it('rolls a move cut short before its flip back when the caller asks for its source', () => {
    expect(planMove(row({ moving_to: 'b' }), 'main')).toEqual({
      action: 'roll-back',
      source: 'main',
      abandoned: 'b',
    })
  })

  it('refuses a move elsewhere while one is claimed, naming both ways out', () => {
    const refused = () => planMove(row({ moving_to: 'b' }), 'c')
    expect(refused).toThrow(expect.objectContaining({ status: 409, code: 'MOVE_IN_PROGRESS' }))
    expect(refused).toThrow(/post cluster b to resume .* cluster main to roll it back/)
  })

  it('finishes a move cut short after its flip, and refuses any other until then', () => {
    const flipped = row({ cluster: 'b', old_copy_on: 'main' })
    expect(planMove(flipped, 'b')).toEqual({ action: 'finish', source: 'main' })
    for (const target of ['main', 'c']) {
      expect(() => planMove(flipped, target)).toThrow(
        expect.objectContaining({ status: 409, code: 'MOVE_IN_PROGRESS' }),
      )
    }
    expect(() => planMove(flipped, 'main')).toThrow(/post cluster b to finish it first/)
  })
})
