import { useSession } from "../../api/session";
import { PageHeader } from "../../components/ui";
import { TenantStats } from "../shared/TenantStats";

export default function Overview() {
  const { me } = useSession();
  return (
    <div>
      <PageHeader title="Overview" />
      {me?.tenant_id && <TenantStats tenantId={me.tenant_id} />}
    </div>
  );
}
