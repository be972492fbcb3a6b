"""The user-activity event catalogue: which category each event name belongs to.

Readers filter the `activity` table by area ("every connection change last month")
far more often than by exact event name, and Workato adds event names over time.
Known names come from Workato's activity audit log reference and its sample
files; a name we have not seen yet is placed by its prefix (`lookup_table_...`),
and anything else is `other`, never an error.

Where the sample files and the reference disagree on a label, the sample file's
heading wins for the events it shows: `team_*` events are `team` ("Team - Member
deleted") and `connector_updated` is `connector` ("Connector - Updated"); the other
custom-connector lifecycle events of the reference are `connector_sdk`.
"""

from __future__ import annotations

from functools import lru_cache

OTHER = "other"

CATEGORIES: dict[str, str] = {
    # Account: sign-in, profile, security and workspace-wide settings.
    "user_login": "account",
    "user_login_failed": "account",
    "user_logout": "account",
    "password_changed": "account",
    "password_reset_requested": "account",
    "user_switched_workspace": "account",
    "account_email_updated": "account",
    "user_email_updated": "account",
    "user_name_updated": "account",
    "two_factor_auth_enabled": "account",
    "two_factor_auth_disabled": "account",
    "two_factor_recovery_codes_viewed": "account",
    "api_key_refreshed": "account",
    "error_notification_emails_updated": "account",
    "error_notification_throttling_updated": "account",
    "audit_log_streaming_enabled": "account",
    "audit_log_streaming_disabled": "account",
    "audit_log_streaming_updated": "account",
    "audit_log_streaming_destination_updated": "account",
    "authentication_method_updated": "account",
    "saml_sso_settings_saved": "account",
    "saml_sso_enforcement_enabled": "account",
    "saml_sso_enforcement_disabled": "account",
    "saml_roles_sync_enabled": "account",
    "saml_roles_sync_disabled": "account",
    "saml_jit_provisioning_enabled": "account",
    "saml_jit_provisioning_disabled": "account",
    "plan_updated": "account",
    "app_access_updated": "account",
    "custom_oauth_profile_assigned": "account",
    "custom_oauth_profile_unassigned": "account",
    "external_id_updated": "account",
    "embedding_configuration_updated": "account",
    "customer_manager_assigned": "account",
    "customer_manager_removed": "account",
    "customer_manager_updated": "account",
    "shared_connector_deployed": "account",
    "shared_connector_redeployed": "account",
    "shared_connector_removed": "account",
    "branding_updated": "account",
    # Embedded customer workspaces and the collaborators of a workspace.
    "workspace_created": "workspace",
    "workspace_deleted": "workspace",
    "workspace_name_changed": "workspace",
    "invitation_created": "workspace",
    "invitation_accepted": "workspace",
    "invitation_updated": "workspace",
    "invitation_deleted": "workspace",
    "role_created": "workspace",
    "role_updated": "workspace",
    "role_deleted": "workspace",
    "privilege_group_created": "workspace",
    "privilege_group_updated": "workspace",
    "privilege_group_deleted": "workspace",
    # Team membership, as the sample files name it.
    "team_invitation_created": "team",
    "team_invitation_accept": "team",
    "team_invitation_updated": "team",
    "team_invitation_deleted": "team",
    "team_membership_created": "team",
    "team_membership_updated": "team",
    "team_membership_deleted": "team",
    # Environments (Automation HQ).
    "environment_switched": "environment",
    "environment_provisioned": "environment",
    # Recipes.
    "recipe_created": "recipe",
    "recipe_updated": "recipe",
    "recipe_deleted": "recipe",
    "recipe_copied": "recipe",
    "recipe_cloned": "recipe",
    "recipe_renamed": "recipe",
    "recipe_moved": "recipe",
    "recipe_started": "recipe",
    "recipe_stopped": "recipe",
    "recipe_access_scope_updated": "recipe",
    # Connections.
    "connection_created": "connection",
    "connection_updated": "connection",
    "connection_connected": "connection",
    "connection_disconnected": "connection",
    "connection_deleted": "connection",
    "connection_moved": "connection",
    # Connectors.
    "connector_updated": "connector",
    "connector_created": "connector_sdk",
    "connector_deleted": "connector_sdk",
    "connector_installed": "connector_sdk",
    "connector_released": "connector_sdk",
    "connector_shared": "connector_sdk",
    "connector_shared_closed_source_changed": "connector_sdk",
    # Tags.
    "tag_created": "tag",
    "tag_updated": "tag",
    "tag_deleted": "tag",
    "tag_added": "tag",
    "tag_removed": "tag",
    # Folders.
    "folder_created": "folder",
    "folder_deleted": "folder",
    "folder_renamed": "folder",
    "folder_moved": "folder",
    # Recipe lifecycle management.
    "manifest_created": "package",
    "manifest_updated": "package",
    "manifest_deleted": "package",
    "package_exported": "package",
    "package_imported": "package",
    # Projects and their deployments across environments.
    "project_created": "project",
    "project_updated": "project",
    "project_deleted": "project",
    "project_deployed": "deployment",
    "deployment_created": "deployment",
    # Tools.
    "common_data_model_created": "common_data_model",
    "common_data_model_updated": "common_data_model",
    "common_data_model_deleted": "common_data_model",
    "lookup_table_created": "lookup_table",
    "lookup_table_updated": "lookup_table",
    "lookup_table_deleted": "lookup_table",
    "lookup_table_truncated": "lookup_table",
    "lookup_table_moved": "lookup_table",
    "lookup_table_csv_imported": "lookup_table",
    "lookup_table_csv_exported": "lookup_table",
    "message_template_created": "message_template",
    "message_template_updated": "message_template",
    "message_template_deleted": "message_template",
    "account_property_created": "property",
    "account_property_updated": "property",
    "account_property_deleted": "property",
    "project_property_created": "property",
    "project_property_updated": "property",
    "project_property_deleted": "property",
    "topic_created": "event_topic",
    "topic_updated": "event_topic",
    # API platform.
    "api_collection_created": "api_platform",
    "api_collection_updated": "api_platform",
    "api_collection_deleted": "api_platform",
    "api_endpoint_created": "api_platform",
    "api_endpoint_updated": "api_platform",
    "api_endpoint_deleted": "api_platform",
    "api_endpoint_activated": "api_platform",
    "api_endpoint_deactivated": "api_platform",
    "api_client_created": "api_platform",
    "api_client_updated": "api_platform",
    "api_client_deleted": "api_platform",
    "access_profile_created": "api_platform",
    "access_profile_updated": "api_platform",
    "access_profile_deleted": "api_platform",
    "access_profile_api_key_refreshed": "api_platform",
    "api_policy_created": "api_platform",
    "api_policy_updated": "api_platform",
    "api_policy_deleted": "api_platform",
    # Workflow apps: apps, portal, user groups, stages, pages and data tables.
    "app_created": "workflow_apps",
    "app_configuration_changed": "workflow_apps",
    "app_published": "workflow_apps",
    "portal_url_changed": "workflow_apps",
    "portal_renamed": "workflow_apps",
    "portal_authentication_changed": "workflow_apps",
    "portal_embedding_changed": "workflow_apps",
    "portal_branding_changed": "workflow_apps",
    "user_group_created": "workflow_apps",
    "user_group_renamed": "workflow_apps",
    "user_group_deleted": "workflow_apps",
    "portal_user_invited": "workflow_apps",
    "portal_user_added_to_group": "workflow_apps",
    "workflow_stage_created": "workflow_apps",
    "workflow_stage_updated": "workflow_apps",
    "workflow_stage_deleted": "workflow_apps",
    "page_created": "workflow_apps",
    "page_renamed": "workflow_apps",
    "page_updated": "workflow_apps",
    "page_deleted": "workflow_apps",
    "data_table_created": "workflow_apps",
    "data_table_renamed": "workflow_apps",
    "data_table_deleted": "workflow_apps",
    "data_table_record_created": "workflow_apps",
    "data_table_record_updated": "workflow_apps",
    "data_table_record_deleted": "workflow_apps",
    "data_table_structure_updated": "workflow_apps",
}

# Prefixes (ending in "_") for names the table does not know yet. The longest
# matching prefix wins, so `project_property_...` is a property, not a project.
PREFIXES: dict[str, str] = {
    "user_group_": "workflow_apps",
    "user_": "account",
    "password_": "account",
    "two_factor_": "account",
    "saml_": "account",
    "audit_log_": "account",
    "api_key_": "account",
    "error_notification_": "account",
    "custom_oauth_": "account",
    "customer_manager_": "account",
    "shared_connector_": "account",
    "branding_": "account",
    "account_property_": "property",
    "project_property_": "property",
    "account_": "account",
    "workspace_": "workspace",
    "invitation_": "workspace",
    "member_": "workspace",
    "role_": "workspace",
    "privilege_group_": "workspace",
    "team_": "team",
    "environment_": "environment",
    "recipe_": "recipe",
    "flow_": "recipe",
    "connection_": "connection",
    "shared_account_": "connection",
    "connector_": "connector_sdk",
    "adapter_": "connector_sdk",
    "tag_": "tag",
    "folder_": "folder",
    "manifest_": "package",
    "package_": "package",
    "project_": "project",
    "deployment_": "deployment",
    "common_data_model_": "common_data_model",
    "lookup_table_": "lookup_table",
    "message_template_": "message_template",
    "topic_": "event_topic",
    "event_topic_": "event_topic",
    "api_": "api_platform",
    "access_profile_": "api_platform",
    "app_": "workflow_apps",
    "portal_": "workflow_apps",
    "workflow_": "workflow_apps",
    "page_": "workflow_apps",
    "data_table_": "workflow_apps",
}


@lru_cache(maxsize=4096)
def category_of(event: str) -> str:
    """The category of a user-activity event name: known name, else its prefix, else `other`."""
    name = event.strip().lower()
    known = CATEGORIES.get(name)
    if known is not None:
        return known
    # Try "a_b_c_", then "a_b_", then "a_": dictionary lookups, longest first.
    end = name.rfind("_")
    while end > 0:
        found = PREFIXES.get(name[: end + 1])
        if found is not None:
            return found
        end = name.rfind("_", 0, end)
    return OTHER
