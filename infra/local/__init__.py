"""The embedded cloud: moto's server on 127.0.0.1 provisioned from a stack's offline plan.

Moto stores what AWS would store; the modules here execute what moto only stores: alarms
(`alarms`), EventBridge rules and schedules (`events`) and Lambda handlers (`handlers`), all
reading their configuration back from the emulator so boto3 code cannot tell the difference.
"""
