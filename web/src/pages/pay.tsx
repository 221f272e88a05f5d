import { t } from '../i18n';
import { Page } from '../ui';

export function Pay() {
  return <Page title={t('pay')}><p class="empty">{t('comingSoon')}</p></Page>;
}
