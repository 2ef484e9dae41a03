import { jsonResponse } from '../../lib'

describe('Function: jsonResponse', () => {
  it('gives a JSON body with its content type, and the headers given', () => {
    expect(jsonResponse(201, { id: 7 }, { location: '/orders/7' })).toEqual({
      statusCode: 201,
      headers: { 'content-type': 'application/json', location: '/orders/7' },
      body: '{"id":7}',
    })
  })

  it('gives an empty body when there is none', () => {
    expect(jsonResponse(204)).toEqual({
      statusCode: 204,
      headers: { 'content-type': 'application/json' },
      body: '',
    })
  })
})
