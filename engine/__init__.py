"""teiji's runtime: decide (pure time math), plan (pure), observe and act (AWS adapters), tick.

Where things live:
- ``engine.localtime``   wall-clock to instant rules (DST gaps and overlaps)
- ``engine.calendars``   holiday calendars: national (``holidays`` library) and company documents
- ``engine.decide``      the decision rules: running / stopped / unmanaged at an instant, and when
                         that changes next
- ``engine.model``       the small value types shared by deciding, planning and reporting
- ``engine.plan``        what to change on one service, a pure function of what was observed
- ``engine.store``       DynamoDB: config table (documents), state table (baselines)
- ``engine.lease``       the tick lease: shards, the lease record, take, renew, release
- ``engine.aws``         boto3 clients, the catalogue of AWS operations teiji may call, adapters
- ``engine.targets``     load balancer target checks and repair
- ``engine.tick``        one run: lease, load, decide, observe, plan, apply, report
- ``engine.handler``     the Lambda entry point
- ``engine.cli``         the ``teiji`` command
"""

__version__ = "0.1.0"
