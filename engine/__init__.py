"""teiji's runtime: decide (pure time math), plan (pure), observe and act (AWS adapters), tick.

One service's path, by file name: ``handler`` -> ``tick`` (the lease, the phases in order) ->
``phases`` (select, decide, observe) -> ``converge`` (one service) -> ``plan`` (what to change)
-> ``apply`` (in order) -> ``aws/autoscaling``, ``aws/ecs`` -> AWS; then ``targets`` ->
``aws/elbv2``.

Every module, one line each:
- ``engine.handler``        the Lambda entry point: one tick per invocation
- ``engine.tick``           one run: the lease protocol, the phases in order, the report
- ``engine.phases``         the tick's phases as functions that return what they settled
- ``engine.converge``       one service from its decision to the AWS calls: plan, apply, targets
- ``engine.lease``          the tick lease: shards, cover, the lease record, take, renew, release
- ``engine.access``         the allow-list and growth cap (pure checks)
- ``engine.config``         settings from the environment (the Lambda and the CLI agree)
- ``engine.localtime``      wall-clock to instant rules (DST gaps and overlaps)
- ``engine.cron``           cron expressions compiled once, their fires in local wall-clock time
- ``engine.calendars``      holiday calendars: national (``holidays``) and company documents
- ``engine.decide``         the decision rules: running / stopped / unmanaged, and until when
- ``engine.documents``      what a warm Lambda keeps between ticks: parsed documents, the Decider
- ``engine.model``          the values shared by deciding, planning and acting (Observation...)
- ``engine.plan``           what to change on one service: a pure function of values
- ``engine.apply``          carrying out one service's plan, in order
- ``engine.observe``        the batched reads: DescribeServices, DescribeScalableTargets
- ``engine.targets``        load balancer target checks and repair
- ``engine.store``          DynamoDB: the config table (documents) and the state table
- ``engine.report``         what a tick did, per service and in total
- ``engine.logs``           JSON-lines logging
- ``engine.events``         the EventBridge events of a finished tick (pure)
- ``engine.metrics``        the tick's CloudWatch metrics, in the embedded metric format
- ``engine.overrides``      overrides for people at a terminal: build, extend, cap (pure)
- ``engine.files``          document files (YAML or JSON), for the CLI
- ``engine.putdiff``        what ``teiji put`` replaces, field by field
- ``engine.tablecheck``     the config table checked as a whole
- ``engine.simulate``       what the schedules will do over a range, and the savings (pure)
- ``engine.projection``     the monthly projection of a simulation (pure)
- ``engine.pricing``        Fargate prices and task sizes
- ``engine.timeline_html``  the simulation as one HTML page (pure); its parts:
  ``engine.timeline_rows`` (a day's quarter-hour cells), ``engine.timeline_overview`` (the
  service x day overview, sorting and the filter), ``engine.timeline_text`` (English and
  Japanese words, holiday names) and ``engine.timeline_css`` (the style sheet)
- ``engine.demo``           ``teiji demo``'s world (needs moto; not in the Lambda zip)
- ``engine.aws``            AWS access: clients, operations, errors, answers, batching, adapters
                            (ecs, autoscaling, elbv2) and pacing (clock, bucket, pacing, lanes)
- ``engine.cli``            the ``teiji`` command, one module per group of commands
"""

__version__ = "0.1.0"
