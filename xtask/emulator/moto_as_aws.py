"""moto's server, with what the tests need it to do as AWS does and moto does not.

Started by `xtask/src/moto.rs` with the venv's Python instead of `moto_server`; each change
below cites AWS's documented behaviour.
"""
import sys

from moto.cloudformation.models import Stack
from moto.cloudformation.parsing import ResourceMap
from moto.server import main

_delete_resource = ResourceMap._delete_resource


def _delete_unless_retained(self, parsed_resource, resource_json):
    # "This capability also applies to stack update operations that lead to resources being
    # deleted from stacks. For example, if you remove the resource from the stack template,
    # and then update the stack with the template." (CloudFormation Template Reference,
    # "DeletionPolicy attribute"). moto 5.2.5 honours Retain when a stack is deleted, not when
    # an update removes the resource: it deletes the bucket an upgrade moves to the data stack.
    if resource_json.get("DeletionPolicy") == "Retain":
        return
    _delete_resource(self, parsed_resource, resource_json)


ResourceMap._delete_resource = _delete_unless_retained

_stack_init = Stack.__init__


def _stack_init_seeing_later_exports(self, *args, cross_stack_resources=None, **kwargs):
    # Fn::ImportValue resolves against the exports that exist when a stack is created or
    # updated ("you can't delete a stack if another stack references one of its outputs";
    # CloudFormation User Guide, "Get exported outputs from a deployed CloudFormation stack").
    # moto 5.2.5 hands each stack the account's export table, but `table or {}` swaps an
    # empty one for a fresh dict: a stack created before any export never sees one, and its
    # update to a template importing the data stack fails "No export named ... found".
    _stack_init(self, *args, cross_stack_resources=cross_stack_resources, **kwargs)
    if cross_stack_resources is not None:
        self.cross_stack_resources = cross_stack_resources
        self.resource_map.cross_stack_resources = cross_stack_resources


Stack.__init__ = _stack_init_seeing_later_exports

_stack_update = Stack.update


def _update_keeping_the_role(self, template, role_arn=None, parameters=None, tags=None):
    # "If you don't specify a value, CloudFormation uses the role that was previously
    # associated with the stack" (UpdateStack API reference, RoleARN). moto 5.2.5 drops it.
    _stack_update(self, template, role_arn=role_arn or self.role_arn, parameters=parameters, tags=tags)


Stack.update = _update_keeping_the_role

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
