"""The top of the house: the aiohttp app, the GraphQL view and context, /healthz, the server, the query
runner, the error policy, the one middleware (front: metrics, edge, request reader, response cache) and the schema export. The only place that knows
aiohttp and the strawberry Schema.
"""
